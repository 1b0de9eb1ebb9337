//! Relay throughput on the namespace lab, three backends in one invocation:
//! (a) a recvmmsg/sendmmsg socket relay, (b) AF_XDP workers, (c) the XDP fast path.
//!
//! `sudo target/release/examples/xdp_bench [--seconds S]` (root: namespaces, XDP).
//!
//! Setup: `scripts/lab up --queues 1 --prefix xtb<pid>`; one session PBX → carrier; a generator
//! pinned to CPU 0 in the PBX namespace blasts 172-byte RTP with sendmmsg; the relay (socket
//! thread or AF_XDP worker) is pinned to CPU 1; the carrier's veth runs `xtrunk_sink`, an XDP
//! program that counts and drops (so receiving costs nothing). Reported per backend: delivered
//! packets/s, CPU time the relay core spent, and packets per second per relay core = delivered /
//! (relay CPU seconds per second). For the fast path the forwarding runs inside the XDP program
//! (on veth: in the sender's softirq, i.e. on the generator's CPU), so its per-core figure is
//! computed from the kernel's BPF run-time statistics (run_count / run_time), which count only the
//! program itself. Numbers are ratios against the socket run of the same invocation.

use std::{
    net::{SocketAddr, SocketAddrV4, UdpSocket},
    os::fd::AsRawFd,
    path::PathBuf,
    process::Command as Proc,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        mpsc, Arc,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use xtrunk_datapath::{
    relay::{Relay, RelayConfig, Verdict},
    xsk::{enable_run_stats, AttachMode, Sink, XskInterface, XskMode, XskOptions, XskRuntime},
};
use xtrunk_ring::msg::{Command, LatchPolicy, LegCrypto, LegSpec, PtMap, SessionId, SessionSpec};

const RELAY_CPU: usize = 1;
const GEN_CPU: usize = 0;

fn lab(cmd: &str, prefix: &str) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/lab");
    let st = Proc::new("bash").arg(script).args([cmd, "--queues", "1", "--prefix", prefix]).status().expect("lab");
    assert!(st.success(), "scripts/lab {cmd} failed");
}

struct LabGuard(String);
impl Drop for LabGuard {
    fn drop(&mut self) {
        lab("down", &self.0);
    }
}

fn enter_netns(ns: &str) {
    let f = std::fs::File::open(format!("/var/run/netns/{ns}")).expect("netns");
    // SAFETY: setns on a valid namespace fd changes only this thread's network namespace.
    assert_eq!(unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) }, 0, "setns {ns}");
}

fn spawn_in<T: Send + 'static>(name: &str, ns: &str, f: impl FnOnce() -> T + Send + 'static) -> JoinHandle<T> {
    let ns = ns.to_owned();
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            enter_netns(&ns);
            f()
        })
        .unwrap()
}

fn pin(cpu: usize) {
    core_affinity::set_for_current(core_affinity::CoreId { id: cpu });
}

fn spec() -> SessionSpec {
    let leg = |local: &str, remote: &str, latch| LegSpec {
        local: local.parse().unwrap(),
        remote: Some(remote.parse().unwrap()),
        remote_rtcp_port: 0,
        rtcp_mux: true,
        latch,
        signal_ip: None,
        pt_map: PtMap::new(),
        crypto: LegCrypto::default(),
        ptime_ms: 0,
    };
    SessionSpec {
        id: SessionId(1),
        legs: [
            leg("10.77.1.1:30000", "10.77.1.2:40000", LatchPolicy::Once),
            leg("10.77.2.1:30002", "10.77.2.2:50000", LatchPolicy::Strict),
        ],
        media_timeout_ms: 0,
        leg_timeout_ms: [0; 2],
        allow_fast_path: true,
    }
}

fn relay_cfg() -> RelayConfig {
    RelayConfig { port_min: 30000, port_max: 30999, max_sessions: 16 }
}

/// CPU time (ns) of the thread named `name` of this process (`/proc/self/task/*/schedstat`).
fn thread_cpu_ns(name: &str) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
        if comm.trim() == name {
            let s = std::fs::read_to_string(e.path().join("schedstat")).unwrap_or_default();
            total += s.split_whitespace().next().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        }
    }
    total
}

/// The generator: sendmmsg bursts of 64 RTP packets from 10.77.1.2:40000 to the relay.
fn generator(ns: &str, stop: Arc<AtomicBool>) -> JoinHandle<u64> {
    spawn_in("gen", ns, move || {
        pin(GEN_CPU);
        let s = UdpSocket::bind("10.77.1.2:40000").unwrap();
        s.connect("10.77.1.1:30000").unwrap();
        const N: usize = 64;
        let mut bufs = vec![[0u8; 172]; N];
        for (i, b) in bufs.iter_mut().enumerate() {
            b[0] = 0x80;
            b[8..12].copy_from_slice(&0x1234_5678u32.to_be_bytes());
            b[2..4].copy_from_slice(&(i as u16).to_be_bytes());
        }
        let mut iov: Vec<libc::iovec> =
            bufs.iter_mut().map(|b| libc::iovec { iov_base: b.as_mut_ptr().cast(), iov_len: b.len() }).collect();
        // SAFETY: zeroed mmsghdr is valid; iov pointers set below stay valid for the loop.
        let mut msgs: Vec<libc::mmsghdr> = (0..N).map(|_| unsafe { std::mem::zeroed() }).collect();
        for (m, v) in msgs.iter_mut().zip(iov.iter_mut()) {
            m.msg_hdr.msg_iov = v;
            m.msg_hdr.msg_iovlen = 1;
        }
        let mut seq: u16 = 0;
        let mut sent = 0u64;
        while !stop.load(Ordering::Relaxed) {
            for b in bufs.iter_mut() {
                seq = seq.wrapping_add(1);
                b[2..4].copy_from_slice(&seq.to_be_bytes());
                b[4..8].copy_from_slice(&(u32::from(seq) * 160).to_be_bytes());
            }
            // SAFETY: msgs/iov/bufs are live and consistent.
            let n = unsafe { libc::sendmmsg(s.as_raw_fd(), msgs.as_mut_ptr(), N as u32, 0) };
            if n > 0 {
                sent += n as u64;
            }
        }
        sent
    })
}

fn sockaddr_v4(a: &libc::sockaddr_in) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(u32::from_be(a.sin_addr.s_addr).into(), u16::from_be(a.sin_port)))
}

fn to_sockaddr(a: SocketAddr) -> libc::sockaddr_in {
    let SocketAddr::V4(v4) = a else { panic!("bench is IPv4") };
    libc::sockaddr_in {
        sin_family: libc::AF_INET as u16,
        sin_port: v4.port().to_be(),
        sin_addr: libc::in_addr { s_addr: u32::from(*v4.ip()).to_be() },
        sin_zero: [0; 8],
    }
}

/// The baseline: one thread, two UDP sockets, recvmmsg → Relay::handle_packet → sendmmsg.
fn socket_relay(ns: &str, stop: Arc<AtomicBool>, ready: mpsc::Sender<()>, busy: Arc<AtomicU64>) -> JoinHandle<()> {
    spawn_in("sock-relay", ns, move || {
        pin(RELAY_CPU);
        let socks = [UdpSocket::bind("10.77.1.1:30000").unwrap(), UdpSocket::bind("10.77.2.1:30002").unwrap()];
        let ports = [30000u16, 30002];
        let mut relay = Relay::new(relay_cfg());
        relay.apply(0, &Command::Create(spec()), &mut |_| {});
        const B: usize = 64;
        let mut bufs = vec![[0u8; 2048]; B];
        let mut iov: Vec<libc::iovec> =
            bufs.iter_mut().map(|b| libc::iovec { iov_base: b.as_mut_ptr().cast(), iov_len: b.len() }).collect();
        // SAFETY: zeroed sockaddr_in / mmsghdr are valid values.
        let mut names: Vec<libc::sockaddr_in> = (0..B).map(|_| unsafe { std::mem::zeroed() }).collect();
        // SAFETY: as above.
        let mut msgs: Vec<libc::mmsghdr> = (0..B).map(|_| unsafe { std::mem::zeroed() }).collect();
        // SAFETY: as above.
        let mut out: Vec<libc::mmsghdr> = (0..B).map(|_| unsafe { std::mem::zeroed() }).collect();
        let mut out_iov: Vec<libc::iovec> =
            (0..B).map(|_| libc::iovec { iov_base: std::ptr::null_mut(), iov_len: 0 }).collect();
        // SAFETY: as above.
        let mut out_names: Vec<libc::sockaddr_in> = (0..B).map(|_| unsafe { std::mem::zeroed() }).collect();
        let epoch = Instant::now();
        ready.send(()).unwrap();
        while !stop.load(Ordering::Relaxed) {
            let mut any = false;
            for si in 0..2 {
                for i in 0..B {
                    msgs[i].msg_hdr.msg_iov = &mut iov[i];
                    msgs[i].msg_hdr.msg_iovlen = 1;
                    msgs[i].msg_hdr.msg_name = (&mut names[i] as *mut libc::sockaddr_in).cast();
                    msgs[i].msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as u32;
                }
                // SAFETY: msgs point at live iovecs/buffers/names of the stated sizes.
                let n = unsafe {
                    libc::recvmmsg(
                        socks[si].as_raw_fd(),
                        msgs.as_mut_ptr(),
                        B as u32,
                        libc::MSG_DONTWAIT,
                        std::ptr::null_mut(),
                    )
                };
                if n <= 0 {
                    continue;
                }
                let t0 = Instant::now();
                any = true;
                let now = epoch.elapsed().as_millis() as u64;
                let mut k = [0usize; 2];
                let mut outs: [Vec<usize>; 2] = [Vec::new(), Vec::new()];
                for i in 0..n as usize {
                    let len = msgs[i].msg_len as usize;
                    let src = sockaddr_v4(&names[i]);
                    if let Verdict::Forward { len, from, to } =
                        relay.handle_packet(now, ports[si], src, &mut bufs[i], len)
                    {
                        let o = usize::from(from.port() != ports[0]);
                        out_names[i] = to_sockaddr(to);
                        out_iov[i] = libc::iovec { iov_base: bufs[i].as_mut_ptr().cast(), iov_len: len };
                        outs[o].push(i);
                        k[o] += 1;
                    }
                }
                for o in 0..2 {
                    for (j, &i) in outs[o].iter().enumerate() {
                        out[j].msg_hdr.msg_iov = &mut out_iov[i];
                        out[j].msg_hdr.msg_iovlen = 1;
                        out[j].msg_hdr.msg_name = (&mut out_names[i] as *mut libc::sockaddr_in).cast();
                        out[j].msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as u32;
                    }
                    if k[o] > 0 {
                        // SAFETY: out[..k] point at live iovecs/names.
                        unsafe { libc::sendmmsg(socks[o].as_raw_fd(), out.as_mut_ptr(), k[o] as u32, 0) };
                    }
                }
                // The recvmmsg that returned data is not timed; its cost is small next to the sends.
                busy.fetch_add(t0.elapsed().as_nanos() as u64, Ordering::Relaxed);
            }
            if !any {
                let mut p = [
                    libc::pollfd { fd: socks[0].as_raw_fd(), events: libc::POLLIN, revents: 0 },
                    libc::pollfd { fd: socks[1].as_raw_fd(), events: libc::POLLIN, revents: 0 },
                ];
                // SAFETY: p is a live array of 2 pollfd.
                unsafe { libc::poll(p.as_mut_ptr(), 2, 10) };
            }
        }
    })
}

struct Sample {
    delivered: u64,
    busy_ns: u64,
    cpu_ns: u64,
    xdp_ns: u64,
    xdp_runs: u64,
    secs: f64,
}

fn measure(secs: f64, sink: &Sink, thread: &str, xdp: &dyn Fn() -> (Duration, u64, u64)) -> Sample {
    std::thread::sleep(Duration::from_millis(500));
    let (c0, t0, x0) = (sink.count().unwrap(), thread_cpu_ns(thread), xdp());
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(secs));
    let (c1, t1, x1) = (sink.count().unwrap(), thread_cpu_ns(thread), xdp());
    Sample {
        delivered: c1 - c0,
        busy_ns: x1.2 - x0.2,
        cpu_ns: t1 - t0,
        xdp_ns: (x1.0 - x0.0).as_nanos() as u64,
        xdp_runs: x1.1 - x0.1,
        secs: start.elapsed().as_secs_f64(),
    }
}

fn run_xsk(ns: &str, fast: bool, secs: f64, sink: &Sink, pbx: &str) -> Sample {
    let (tx, rx) = mpsc::channel();
    let stop = Arc::new(AtomicBool::new(false));
    let st = stop.clone();
    let ctl = spawn_in("xsk-ctl", ns, move || {
        let opts = XskOptions {
            interfaces: ["rp0", "rc0"]
                .iter()
                .map(|n| XskInterface { name: (*n).into(), queues: vec![0], cores: vec![RELAY_CPU] })
                .collect(),
            mode: XskMode::Auto,
            attach: AttachMode::Auto,
            fast_path: fast,
            port_min: 30000,
            port_max: 30999,
            ..XskOptions::default()
        };
        let mut rt = XskRuntime::start(opts, Relay::new(relay_cfg())).expect("xsk start");
        rt.apply(&Command::Create(spec()), &mut |_| {});
        let (stx, srx) = mpsc::channel::<mpsc::Sender<(Duration, u64, usize, u64)>>();
        tx.send(stx).unwrap();
        while !st.load(Ordering::Relaxed) {
            rt.tick(&mut |_| {});
            while let Ok(reply) = srx.try_recv() {
                let s = rt.stats();
                let busy = s.workers.iter().map(|w| w.busy.as_nanos() as u64).sum();
                let _ = reply.send((s.xdp_run.0, s.xdp_run.1, s.fast_ports, busy));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        if std::env::var_os("XDP_BENCH_VERBOSE").is_some() {
            eprintln!("{:#?}", rt.stats().workers);
        }
        rt.shutdown();
    });
    let stats_req = rx.recv().unwrap();
    let ask = move || {
        let (t, r) = mpsc::channel();
        stats_req.send(t).unwrap();
        r.recv().unwrap()
    };
    let gstop = Arc::new(AtomicBool::new(false));
    let g = generator(pbx, gstop.clone());
    if fast {
        let t = Instant::now();
        while ask().2 == 0 {
            assert!(t.elapsed() < Duration::from_secs(5), "session never reached the fast path");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let s = measure(secs, sink, "xsk-q0", &|| {
        let (d, n, _, b) = ask();
        (d, n, b)
    });
    gstop.store(true, Ordering::Relaxed);
    g.join().unwrap();
    stop.store(true, Ordering::Relaxed);
    ctl.join().unwrap();
    s
}

fn main() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("xdp_bench: needs root (network namespaces, XDP)");
        std::process::exit(2);
    }
    let mut secs = 3.0;
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--seconds") {
        secs = args.get(i + 1).and_then(|v| v.parse().ok()).unwrap_or(secs);
    }
    let prefix = format!("xtb{}", std::process::id());
    lab("up", &prefix);
    let _guard = LabGuard(prefix.clone());
    let (pbx, relay_ns, car) = (format!("{prefix}-pbx"), format!("{prefix}-relay"), format!("{prefix}-carrier"));
    let sink = spawn_in("sink", &car, || Sink::attach("car0").expect("sink")).join().unwrap();
    let _stats = enable_run_stats().expect("BPF stats");

    // (a) socket relay
    let stop = Arc::new(AtomicBool::new(false));
    let (rtx, rrx) = mpsc::channel();
    let sbusy = Arc::new(AtomicU64::new(0));
    let relay = socket_relay(&relay_ns, stop.clone(), rtx, sbusy.clone());
    rrx.recv().unwrap();
    let gstop = Arc::new(AtomicBool::new(false));
    let g = generator(&pbx, gstop.clone());
    let sock = measure(secs, &sink, "sock-relay", &|| (Duration::ZERO, 0, sbusy.load(Ordering::Relaxed)));
    gstop.store(true, Ordering::Relaxed);
    let gen_sent = g.join().unwrap();
    stop.store(true, Ordering::Relaxed);
    relay.join().unwrap();
    let _ = gen_sent;

    // (b) AF_XDP, (c) fast path
    let xsk = run_xsk(&relay_ns, false, secs, &sink, &pbx);
    let fast = run_xsk(&relay_ns, true, secs, &sink, &pbx);

    // Work time per packet on the relay core: time spent on non-empty batches (no idle spin/poll).
    let per_core = |s: &Sample| if s.busy_ns > 0 { s.delivered as f64 * 1e9 / s.busy_ns as f64 } else { 0.0 };
    let base = per_core(&sock);
    println!("backend      delivered_pps  relay_thread_cpu  pps_per_relay_core  ratio   (per core = delivered / work time on non-empty batches)");
    for (name, s) in [("socket", &sock), ("af_xdp", &xsk)] {
        let pc = per_core(s);
        println!(
            "{name:<12} {:>13.0}  {:>15.1}%  {:>18.0}  {:>5.2}x",
            s.delivered as f64 / s.secs,
            s.cpu_ns as f64 / 1e7 / s.secs,
            pc,
            pc / base
        );
    }
    let fast_pc = if fast.xdp_ns > 0 { fast.xdp_runs as f64 * 1e9 / fast.xdp_ns as f64 } else { 0.0 };
    println!(
        "{:<12} {:>13.0}  {:>15.1}%  {:>18.0}  {:>5.2}x   (per-core from BPF run time: {:.0} ns/packet; relay core busy is the idle AF_XDP worker)",
        "fast_path",
        fast.delivered as f64 / fast.secs,
        fast.cpu_ns as f64 / 1e7 / fast.secs,
        fast_pc,
        fast_pc / base,
        if fast.xdp_runs > 0 { fast.xdp_ns as f64 / fast.xdp_runs as f64 } else { 0.0 }
    );
    println!(
        "xdp program in af_xdp mode: {:.0} ns/packet (steering to the XSK, runs on the generator's CPU on veth)",
        if xsk.xdp_runs > 0 { xsk.xdp_ns as f64 / xsk.xdp_runs as f64 } else { 0.0 }
    );
    drop(sink);
}
